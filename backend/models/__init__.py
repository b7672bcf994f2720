"""Storage only: one module per aggregate. Importing this package registers every table."""

from backend.models.login import SandboxLogin, SeenLoginCode
from backend.models.user import User

__all__ = ["SandboxLogin", "SeenLoginCode", "User"]
