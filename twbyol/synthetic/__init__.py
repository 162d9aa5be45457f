"""The motion benchmark: synthetic mouse triplets whose behaviour lives in the pixels over time.

- `ethogram`: the behaviours (rest, walk, head scan, groom, rear), each a motion over several
  frames at or below half the crops' sampling rate, and their semi-Markov bouts (log-normal
  lengths, no self-transitions).
- `motion`: the three mice's kinematics for a bout sequence, as MABe22's 12 keypoints.
- `scene`: one look for every clip (arena, light, coat, size), fresh sensor noise per frame.
- `dataset`: clips written in the MABe22 release layout, scored by the evaluator's protocol.

Its design, timescales and calibration: docs/benchmark.md.
"""
