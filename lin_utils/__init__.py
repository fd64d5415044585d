"""lin_utils: reproduce and extend "Your Transformer is Secretly Linear" (arXiv 2405.12250).

Modules:
    data        corpora and eval sets, local mirror ($LIN_DATA_DIR) first, Hugging Face hub second
    models      load any causal LM (or encoder) by spec; list its decoder blocks
    extract     stream residual-stream states at block boundaries over token batches
    linearity   exact and streaming linearity scores
    experiments the computations behind each figure (tidy tables)
    claims      the paper's claims, our numbers and verdicts
    report      numbers and tables that the book's prose shows (myst-nb glue)
    results     result cache with provenance
    plots       the shared figure style
    book        papermill runner and Jupyter Book build
    cli         the ``lin-utils`` command
"""

__version__ = "0.1.0"
