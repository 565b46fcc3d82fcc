% A neural fact under negation.
nn(avail_net, [X]) :: available(X).
nn(scene_net, [X], E, [happy, sad, neutral]) :: scene(X, E).
0.7::trust.
emotion(X, E) :- available(X), trust, scene(X, E).
emotion(X, neutral) :- \+ available(X).
emotion(X, neutral) :- available(X), \+ trust.
