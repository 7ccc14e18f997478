"""The portal as benchmarks serve it: the real app, plus a plain "hello" view as the baseline,
on the very same server and configuration (gunicorn --workers 2, sync)."""

from portal import create_app

app = create_app()


@app.route("/bench/hello")
def hello():
    return "hello"
