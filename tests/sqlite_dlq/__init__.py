"""Tests of missive-sqlite-dlq."""
