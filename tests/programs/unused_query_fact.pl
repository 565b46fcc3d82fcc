% A query about a fact defined only deterministically, and a query nothing proves.
b.
0.5::c.
nothing :- c, fail.
query(b). query(nothing).
