"""The upstream emulator: the GraphQL APIs of the contract and the legacy v2 API.

A real server over generated data, so the proxy, its tests and the demo run
without the platform. See `app.create_emulator_app`.
"""
