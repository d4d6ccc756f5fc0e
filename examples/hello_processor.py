import missive
from missive.adapters.stdin import StdinAdapter
processor = missive.Processor()
@processor.handle_for(lambda m: m.raw_data == b"Hello")
def greet(message, ctx):
    print("Hello whoever you are")
    ctx.ack()
stdin_processor = StdinAdapter(missive.RawMessage, processor)
if __name__ == "__main__":
    stdin_processor.run()
