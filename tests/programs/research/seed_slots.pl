% The seed program's shape with its own names: two face slots named front and side (the spec's
% slots table says which cache slot each reads), a scene network, availability facts and the
% evidence that the chosen source exists.
nn(scene_net, [X], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: scene_emotion(X, E).
nn(expr, [X, F], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: face_emotion(X, F, E).
nn(seen, [X, F]) :: face_seen(X, F).

face(front). face(side).

t(_)::source(scene); t(_)::source(front); t(_)::source(side).

emotion(X, E) :- source(scene), scene_emotion(X, E).
emotion(X, E) :- source(F), face(F), face_emotion(X, F, E).

available(X, scene).
available(X, F) :- face(F), face_seen(X, F).
ok(X) :- source(S), available(X, S).
evidence(ok(X)).
