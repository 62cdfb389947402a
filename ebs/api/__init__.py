"""The operator surface: the HTTP API (app, server), the Temporal operations it
shares with the CLI (control, status), and authentication (auth, oidc, tokens).

Import the submodules: this package itself imports nothing, so the CLI's
commands load only what they use.
"""
