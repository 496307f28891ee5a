"""`thinkcap eval`: accuracy against thinking budget on any OpenAI-compatible server.

The eval path is a pure HTTP client (openai SDK): it imports no vLLM, and scores with the very
verifiers (scoring/) and record format (tasks/) that training uses. It never imports training/.
"""
