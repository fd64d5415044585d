"""lin_utils: reproduce and extend "Your Transformer is Secretly Linear" (arXiv 2405.12250).

Modules, layered (arrows point down only):
    errors, paths   error types and one-line messages; repository and cache paths
    data            corpora and eval sets, local mirror ($LIN_DATA_DIR) first, Hugging Face hub second
    arch, gguf      block discovery and tiny configs; GGUF -> Hugging Face conversion
    models          load any causal LM (or encoder) by spec
    extract         capture(): residual-stream states at block boundaries, with or without gradients
    linearity       the math only: exact scores, mergeable statistics, fitted maps
    scan            ScanConfig and the no-grad scans that feed the linearity statistics
    train, zoo      regularized pretraining and the model zoo
    evaluate        perplexity, lm-evaluation-harness, linear probes, story completions and judging
    experiments     the computations behind each figure (tidy tables, cached by computation)
    results         result cache with provenance, verified on load
    plots, claims   the shared figure style; the paper's claims, our numbers and verdicts
    report          numbers and tables that the book's prose shows
    runner, site    papermill runner and Jupyter Book build
    cli             the ``lin-utils`` command
"""

__version__ = "0.1.0"
