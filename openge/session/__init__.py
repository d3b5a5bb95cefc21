"""Sessions: GeApi (process-wide init), GeSession/Session, compiled-graph summaries."""

from openge.session.ge_global import GeApi
from openge.session.session import GeSession, Session
from openge.session.summary import CompiledGraphSummary

__all__ = ["CompiledGraphSummary", "GeApi", "GeSession", "Session"]
