"""`make bench`: the daemon measured against a bare aioboto3 loop and the AWS CLI waiter.

Everything runs on loopback against the project's emulator in a process of its own, so
the client under test never competes with the server for one interpreter's GIL.
"""
