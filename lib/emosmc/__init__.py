"""emosmc: counterfactual emotion editing with SMC-steered latent diffusion."""
__version__ = "0.1.0"
