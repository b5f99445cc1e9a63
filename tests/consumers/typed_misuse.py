"""mypy must reject this file: proof that the checker reads numabind's types."""
import numabind

numabind.pin_rank(rank="3")
cpus: str = numabind.plan()[0].cpus
