"""The bundled attack scenario, split by what each module writes.

    pods.py      the cast: pods, nodes, the scenario's start time
    falco.py     Falco alerts as http_output posts them
    audit.py     audit Events as the API server writes them
    scenario.py  one seeded RNG shared by both logs, in call order
    attacks.py   the six chains, one function per story
    noise.py     benign traffic that must produce no chain
    output.py    the committed JSONL files

Every random choice comes from the scenario's one ``random.Random``, so the order of calls
is part of the output: reordering two calls changes the committed files (a test compares
them byte for byte).
"""
