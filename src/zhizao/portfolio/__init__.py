"""Portfolio stage: the programme's projects, designations and statistics, recognition checks and bulletins.

- :func:`programme_statistics` (:mod:`zhizao.portfolio.stats`): counts and average results of a programme,
  every number with the project ids behind it.
- :func:`recognition_checks` (:mod:`zhizao.portfolio.recognition`): digital workshop and smart factory
  criteria, computed from data where possible, otherwise listed as declarations to be confirmed.
- :func:`render_bulletin` (:mod:`zhizao.portfolio.bulletin`): the bulletin in zh / en as HTML and Markdown.

Verification results are read from the store's ``verifications`` table only.
"""

from zhizao.portfolio.bulletin import render_bulletin
from zhizao.portfolio.recognition import recognition_checks
from zhizao.portfolio.registry import PROGRAMME_INDICATORS, latest_verifications, projects
from zhizao.portfolio.stats import bootstrap_mean_ci, programme_statistics

__all__ = ["PROGRAMME_INDICATORS", "bootstrap_mean_ci", "latest_verifications", "programme_statistics",
           "projects", "recognition_checks", "render_bulletin"]
