"""The model server: runtimes behind one interface, a multi-model host with LRU loading
and dynamic batching, a lean ASGI data plane, and the replica processes that run it.

Nothing here knows about the metadata store or about users: a replica is given local
model folders and serves them; the deployment service decides what goes where.
"""
