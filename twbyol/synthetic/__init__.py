"""Synthetic rodent-behaviour datasets, written in the real on-disk layouts (MABe22, RatSI).

`generate` is the `twbyol synth` stage; it writes either generator's clips.

The motion benchmark (`generator: motion`, the synthetic study's): mouse triplets whose
behaviour lives in the pixels over time.

- `ethogram`: the behaviours (rest, walk, head scan, groom, rear), each a motion over several
  frames at or below half the crops' sampling rate, and their semi-Markov bouts (log-normal
  lengths, no self-transitions).
- `motion`: the three mice's kinematics for a bout sequence, as MABe22's 12 keypoints.
- `scene`: one look for every clip (arena, light, coat, size), fresh sensor noise per frame.
- `dataset`: clips written in the MABe22 release layout, scored by the evaluator's protocol.

The social generator (`generator: social`; the RatSI transfer set, and the benchmark before
the motion one): mice or rats in semi-Markov social and solitary actions.

- `social`: the simulation (bouts -> kinematics -> 12 keypoints per animal).
- `render`: keypoints -> grey frames -> H.264 video (`encode_video`, used by both).
- `generate`: the annotator's labels of a simulation and both layouts' files.

The design, timescales and calibration: docs/benchmark.md.
"""
