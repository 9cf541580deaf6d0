"""The services: what combines adapters with the domain (delivery through a channel, agent callbacks, the rule
cache, token auth) and the Gateway the API is handed to reach Temporal."""
