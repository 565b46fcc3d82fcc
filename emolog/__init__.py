"""emolog: neurosymbolic emotion recognition for photos of people in scenes.

Data flows one way through the sub-packages:
data -> perception -> cache -> logic -> training -> analysis/report -> cli.
"""

__version__ = "0.1.0"
