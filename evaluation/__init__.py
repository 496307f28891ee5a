"""`thinkcap eval`: accuracy against thinking budget on any OpenAI-compatible server, and
`thinkcap bench server`: our server against vLLM's own, under vLLM's benchmark client.

The eval path is a pure HTTP client (openai SDK): it imports no vLLM, and scores with the very
verifiers and record format of `training/`.
"""
