import time

import redis
from flask import Flask

app = Flask(__name__)
cache = redis.Redis(host="redis", port=6379, socket_timeout=1, socket_connect_timeout=1)


def get_hit_count():
    retries = 2
    while True:
        try:
            return cache.incr("hits")
        except redis.exceptions.ConnectionError:
            if retries == 0:
                raise
            retries -= 1
            time.sleep(0.2)


@app.route("/")
def hello():
    count = get_hit_count()
    return f"Hello World! I have been seen {count} times.\n"
