"""What the tests build and serve: compiled ELF files and wheels (builders, corpus,
verdict_wheels, mirror), an index server (httpserver), byte-level patching (elfpatch),
child-process isolation (isolated) and auditwheel run hermetically (aw_hermetic)."""
