"""zhizao (智造): ISO 22400 KPIs and verified transformation results from shop-floor data."""

from zhizao.api import Workspace, connect
from zhizao.settings import Settings

__version__ = "0.1.0"
__all__ = ["Settings", "Workspace", "__version__", "connect"]
