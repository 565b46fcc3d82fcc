% Deterministic rules on top of a neural choice.
nn(who_net, [X], P, [ann, bob, cid]) :: who(X, P).
parent(ann, bob). parent(bob, cid). parent(cid, dan).
ancestor(A, B) :- parent(A, B).
ancestor(A, B) :- parent(A, C), ancestor(C, B).
has_desc(X, D) :- who(X, P), ancestor(P, D).
