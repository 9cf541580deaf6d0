"""Delivery channels, one module each; `assembly.build_channels` picks each one's provider from configuration.

Nothing is imported here: a module that needs one channel's code (the API its helpers, a workflow its activities'
types) loads that module alone, not every provider's SDK (Slack's, Apprise, Redis, Twilio, SendGrid, Web Push).
"""
