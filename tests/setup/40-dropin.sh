# notify's drop-in URL tests run the real apprise (tests/fixtures/notify/apprise_send.py) against
# the capture server and compare what it sends with what initbox sends; the bench compares
# notify's start-up and memory with apprise's. Pinned to the version the bodies were checked with.
need_pip "apprise==2.3.0"
