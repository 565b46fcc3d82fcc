% A deterministic program: every answer has probability 0 or 1.
parent(ann, bob). parent(bob, cid). parent(cid, dan).
ancestor(X, Y) :- parent(X, Y).
ancestor(X, Y) :- parent(X, Z), ancestor(Z, Y).
query(ancestor(ann, _)).
query(ancestor(dan, ann)) :- fail.
yes :- ancestor(ann, dan).
no :- ancestor(dan, ann).
query(yes).
query(no).
