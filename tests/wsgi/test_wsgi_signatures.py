"""Webhook signatures: Standard Webhooks and GitHub, against published vectors."""

from __future__ import annotations

import base64

import pytest

from missive_wsgi.signatures import (
    GitHubSignature,
    InvalidSignature,
    StandardWebhooksSignature,
)

# The example of the Standard Webhooks specification.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

OTHER_SECRET = "whsec_" + base64.b64encode(b"another key of 24 bytes!").decode()


def standard_headers(
    signature: str, *, webhook_id: str = SPEC_ID, timestamp: int = SPEC_TIMESTAMP
) -> dict[str, str]:
    return {
        "HTTP_WEBHOOK_ID": webhook_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(timestamp),
        "HTTP_WEBHOOK_SIGNATURE": signature,
    }


def at(now: float) -> StandardWebhooksSignature:
    return StandardWebhooksSignature(SPEC_SECRET, clock=lambda: now)


def test_standard_webhooks_signs_the_specification_example() -> None:
    assert at(0).sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_standard_webhooks_verifies_the_specification_example() -> None:
    at(SPEC_TIMESTAMP + 10).verify(standard_headers(SPEC_SIGNATURE), SPEC_BODY)


def test_standard_webhooks_refuses_a_tampered_body() -> None:
    with pytest.raises(InvalidSignature, match="no webhook-signature"):
        at(SPEC_TIMESTAMP).verify(standard_headers(SPEC_SIGNATURE), SPEC_BODY + b" ")


def test_standard_webhooks_refuses_another_id() -> None:
    headers = standard_headers(SPEC_SIGNATURE, webhook_id="msg_other")

    with pytest.raises(InvalidSignature):
        at(SPEC_TIMESTAMP).verify(headers, SPEC_BODY)


def test_standard_webhooks_refuses_a_wrong_secret() -> None:
    scheme = StandardWebhooksSignature(OTHER_SECRET, clock=lambda: SPEC_TIMESTAMP)

    with pytest.raises(InvalidSignature):
        scheme.verify(standard_headers(SPEC_SIGNATURE), SPEC_BODY)


@pytest.mark.parametrize("skew", [301, -301, 86_400])
def test_standard_webhooks_refuses_a_timestamp_outside_the_tolerance(skew: int) -> None:
    with pytest.raises(InvalidSignature, match="tolerance"):
        at(SPEC_TIMESTAMP + skew).verify(standard_headers(SPEC_SIGNATURE), SPEC_BODY)


def test_standard_webhooks_tolerance_is_configurable() -> None:
    scheme = StandardWebhooksSignature(
        SPEC_SECRET, tolerance=5, clock=lambda: SPEC_TIMESTAMP + 6
    )

    with pytest.raises(InvalidSignature, match="tolerance"):
        scheme.verify(standard_headers(SPEC_SIGNATURE), SPEC_BODY)


def test_standard_webhooks_accepts_an_old_secret_during_rotation() -> None:
    scheme = StandardWebhooksSignature(
        [OTHER_SECRET, SPEC_SECRET], clock=lambda: SPEC_TIMESTAMP
    )

    scheme.verify(standard_headers(SPEC_SIGNATURE), SPEC_BODY)


def test_standard_webhooks_accepts_one_good_entry_among_several() -> None:
    signature = (
        f"v1,bm90IGl0 v1a,ignored!! v2,{SPEC_SIGNATURE[3:]} v1,%%% {SPEC_SIGNATURE}"
    )

    at(SPEC_TIMESTAMP).verify(standard_headers(signature), SPEC_BODY)


def test_standard_webhooks_ignores_entries_of_other_versions() -> None:
    signature = "v2," + SPEC_SIGNATURE.partition(",")[2]

    with pytest.raises(InvalidSignature):
        at(SPEC_TIMESTAMP).verify(standard_headers(signature), SPEC_BODY)


@pytest.mark.parametrize(
    "missing", ["HTTP_WEBHOOK_ID", "HTTP_WEBHOOK_TIMESTAMP", "HTTP_WEBHOOK_SIGNATURE"]
)
def test_standard_webhooks_refuses_a_missing_header(missing: str) -> None:
    headers = standard_headers(SPEC_SIGNATURE)
    del headers[missing]

    with pytest.raises(InvalidSignature, match="missing header"):
        at(SPEC_TIMESTAMP).verify(headers, SPEC_BODY)


def test_standard_webhooks_refuses_a_timestamp_that_is_not_a_number() -> None:
    headers = standard_headers(SPEC_SIGNATURE)
    headers["HTTP_WEBHOOK_TIMESTAMP"] = "yesterday"

    with pytest.raises(InvalidSignature, match="not an integer"):
        at(SPEC_TIMESTAMP).verify(headers, SPEC_BODY)


def test_standard_webhooks_signs_with_every_secret_newest_first() -> None:
    scheme = StandardWebhooksSignature([OTHER_SECRET, SPEC_SECRET])

    entries = scheme.sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY).split()

    assert len(entries) == 2
    assert entries[1] == SPEC_SIGNATURE


def test_standard_webhooks_secret_without_prefix_and_raw_bytes_are_the_same_key() -> (
    None
):
    key = base64.b64decode(SPEC_SECRET.removeprefix("whsec_"))

    for secret in (SPEC_SECRET.removeprefix("whsec_"), key):
        scheme = StandardWebhooksSignature(secret)
        assert scheme.sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_standard_webhooks_bad_secret_is_refused_without_repeating_it() -> None:
    with pytest.raises(ValueError, match="base64") as raised:
        StandardWebhooksSignature("whsec_not*base64*at*all")

    assert "not*base64" not in str(raised.value)


@pytest.mark.parametrize("secrets", [[], "", b""])
def test_a_secret_is_required(secrets: list[str] | str | bytes) -> None:
    with pytest.raises(ValueError, match="secret"):
        StandardWebhooksSignature(secrets)
    with pytest.raises(ValueError, match="secret"):
        GitHubSignature(secrets)


# GitHub, with the example of GitHub's documentation.

GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = (
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
)


def github_headers(signature: str) -> dict[str, str]:
    return {"HTTP_X_HUB_SIGNATURE_256": signature}


def test_github_signs_the_documentation_example() -> None:
    assert GitHubSignature(GITHUB_SECRET).sign(GITHUB_BODY) == GITHUB_SIGNATURE


def test_github_verifies_the_documentation_example() -> None:
    GitHubSignature(GITHUB_SECRET).verify(github_headers(GITHUB_SIGNATURE), GITHUB_BODY)


def test_github_accepts_an_old_secret_during_rotation() -> None:
    scheme = GitHubSignature(["the new secret", GITHUB_SECRET])

    scheme.verify(github_headers(GITHUB_SIGNATURE), GITHUB_BODY)


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (GITHUB_SIGNATURE.replace("7571", "7570"), "matches no secret"),
        ("sha1=" + GITHUB_SIGNATURE[7:], "sha256="),
        ("sha256=zz", "hexadecimal"),
        ("", "missing header"),
    ],
)
def test_github_refuses_a_bad_signature(signature: str, reason: str) -> None:
    with pytest.raises(InvalidSignature, match=reason):
        GitHubSignature(GITHUB_SECRET).verify(github_headers(signature), GITHUB_BODY)


def test_github_refuses_a_tampered_body() -> None:
    with pytest.raises(InvalidSignature):
        GitHubSignature(GITHUB_SECRET).verify(
            github_headers(GITHUB_SIGNATURE), GITHUB_BODY + b"!"
        )
