"""What one run is: its configuration (``run``) and the training regimes (``regimes``)."""
