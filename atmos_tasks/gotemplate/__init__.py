"""Go's text/template, in Python: the template language Atmos renders stack manifests with."""

from .errors import TemplateError
from .template import ATMOS_MISSING_KEY, Template, parse, render
from .values import NO_VALUE

__all__ = ["ATMOS_MISSING_KEY", "NO_VALUE", "Template", "TemplateError", "parse", "render"]
