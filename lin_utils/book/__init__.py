"""The book's machinery, apart from the science: what a page shows besides its prose
(:mod:`.glue`), tables for the text column (:mod:`.tables`) and the executed pages read back
(:mod:`.executed`). The runner, profiles, site build and verify live beside them in
:mod:`lin_utils.runner`, :mod:`lin_utils.site` and :mod:`lin_utils.verify`.
"""
