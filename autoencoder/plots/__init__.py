"""Figures from arrays, by whose they are: a run's, a VAE's, the denoising sweep's, anomaly
detection's, several runs' (`compare`); and the `plot` command."""

from autoencoder.plots.anomaly import (
    plot_anomaly_extremes,
    plot_anomaly_scores,
    plot_benchmark,
    plot_roc,
)
from autoencoder.plots.compare import plot_compare_curves, plot_compare_reconstructions
from autoencoder.plots.denoise import plot_psnr_vs_level, plot_robustness, plot_triplets
from autoencoder.plots.figure import label_text
from autoencoder.plots.run import (
    plot_all,
    plot_error_by_class,
    plot_evaluation,
    plot_loss,
    plot_reconstructions,
    plot_run,
    plot_worst,
)
from autoencoder.plots.vae import (
    plot_interpolations,
    plot_latent,
    plot_samples,
    plot_vae_terms,
    vae_figures,
)

__all__ = [
    "label_text",
    "plot_all",
    "plot_anomaly_extremes",
    "plot_anomaly_scores",
    "plot_benchmark",
    "plot_compare_curves",
    "plot_compare_reconstructions",
    "plot_error_by_class",
    "plot_evaluation",
    "plot_interpolations",
    "plot_latent",
    "plot_loss",
    "plot_psnr_vs_level",
    "plot_reconstructions",
    "plot_robustness",
    "plot_roc",
    "plot_run",
    "plot_samples",
    "plot_triplets",
    "plot_vae_terms",
    "plot_worst",
    "vae_figures",
]
