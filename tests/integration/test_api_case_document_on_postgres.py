"""tests/test_api_case_document.py, unchanged, on PostgreSQL: the JSON PostgreSQL builds
(json_build_object / json_agg) must equal the Python serializers' document too."""

from __future__ import annotations

from tests import test_api_case_document as _suite

globals().update({k: v for k, v in vars(_suite).items() if not k.startswith("__")})
