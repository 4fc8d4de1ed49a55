"""Subscribe and publish from code that is not asyncio, with appsync_events.sync.

Set APPSYNC_HTTP_ENDPOINT and APPSYNC_API_KEY first (the emulator's banner shows both).
"""

from __future__ import annotations

import os
import threading

from appsync_events import authorizer, sync

HTTP_ENDPOINT = os.environ["APPSYNC_HTTP_ENDPOINT"]
API_KEY = os.environ["APPSYNC_API_KEY"]


def main() -> None:
    authz = authorizer.ApiKey(API_KEY)
    # connect() returns once the connection is acknowledged; the with block closes it
    # (and ends the client's background thread).
    with sync.connect(HTTP_ENDPOINT, authorizer=authz) as client:
        # subscribe() returns once the subscription is active; the with block unsubscribes.
        with client.subscribe("default/sync") as sub:
            result = client.publish("default/sync", {"n": 1}, {"n": 2})
            print("published", len(result.successful))

            # next(timeout=) waits at most that long; a TimeoutError loses no event.
            print("received", sub.next(timeout=10).json())
            print("decoded", sub.decode_next(timeout=10))
            try:
                sub.next(timeout=0.1)
            except TimeoutError:
                print("nothing else yet")

            # A client is safe to share between threads: publish from a worker.
            worker = threading.Thread(target=client.publish, args=("default/sync", {"n": 3}))
            worker.start()
            worker.join(timeout=10)

            # Iterating waits without a timeout, skips broadcast errors and ends when the
            # subscription or the client is closed.
            for message in sub:
                print("iterated", message.json())
                break

    # Over HTTP (POST /event): one publisher reuses its connections; publish_http is a
    # one-shot.  Both take the arguments of their asyncio counterparts.
    with sync.HttpPublisher(HTTP_ENDPOINT, authorizer=authz) as publisher:
        for n in range(3):
            publisher.publish("default/counter", {"n": n})
    result = sync.publish_http(HTTP_ENDPOINT, "default/sync", "over HTTP", authorizer=authz)
    print("published over HTTP", len(result.successful))


if __name__ == "__main__":
    main()
