% A non-ground query: enumerated into its ground answers.
person(ann). person(bob). person(cid).
0.1::sick(ann). 0.5::sick(bob).
0.3::exposed(X) :- person(X).
ill(X) :- sick(X).
ill(X) :- exposed(X), person(X).
query(ill(X)).
