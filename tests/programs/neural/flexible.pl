% A flexible probability computed from a neural choice (the strength_prob pattern).
nn(strength_net, [X], S, [0, 3, 6, 9]) :: strength(X, S).
nn(face_net, [X], E, [happy, sad]) :: face(X, E).
strength_prob(S, P) :- P is S / 10.
P::context_dom(X) :- strength(X, S), strength_prob(S, P).
answer(X, happy) :- context_dom(X).
answer(X, E) :- \+ context_dom(X), face(X, E).
