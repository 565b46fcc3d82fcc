"""Open bindings: what feeds each neural predicate of a spec's program (docs/model.md, 5b).

* ``schema``: a spec's ``[nets.<name>]``, ``[foreign.<name>]`` and label tables read into
  ``NetBinding`` / ``Foreign`` and checked against the program's declarations and the data
  before anything is compiled (``SpecError``, exit 3, naming the spec file and the network);
* ``fields``: the cached tensors a binding may read, and which face slot an input term reads;
* ``maps``: class maps (a feed's classes onto a network's domain) and label tables (the data
  set's labels onto the program's output values);
* ``feeds``: the objects bound to the program's networks, each called once per batch with all
  its distinct inputs (``emolog.logic.bindings.BatchFeed``), and ``HeadMLP``;
* ``program``: the compiled program of a spec behind the interface ``Network`` uses, by emolog's
  own choice of compilation; ``seed``: that choice's seed-shaped compilation (``LogicModule``).
"""
