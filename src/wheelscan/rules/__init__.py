"""WheelFacts in, a Verdict out: platform tags, auditwheel's policies, the findings."""
