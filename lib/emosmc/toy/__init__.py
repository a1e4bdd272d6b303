"""The toy world: what runs on a laptop CPU and knows every answer.

- :mod:`emosmc.toy.faces`: procedural 64x64 faces, one identity in seven expressions (``render``);
  ground truth for every counterfactual.
- :mod:`emosmc.toy.face_fit`: is an image of unknown identity a toy face? The renderer fitted to it.
- :mod:`emosmc.toy.mixture2d`: an analytic 2-D diffusion (Gaussian mixture, exact noise prediction)
  and exact tilted targets, for checking the SMC engine.
- :mod:`emosmc.toy.assets`: the toy datasets the notebooks use, and the stages that train the bundled
  toy models (``python -m emosmc.toy train-assets``, the command of ``__main__``).
"""
