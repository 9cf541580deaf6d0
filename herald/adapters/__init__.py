"""The adapters: what talks to the world (the store, the channels and their providers, the codec, the SSRF
guard, VAPID keys, metrics and logs). They import the domain, never the services above them."""
