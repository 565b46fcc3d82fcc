% Arousal from the seed's sources (docs/model.md, "Valence and arousal"): one source is chosen by
% a trainable disjunction, as in seed.pl, and its emotion (the scene net's or a face's expression) conveys
% an arousal through a fixed prior table: each emotion's arousal on FindingEmo's integer scale (0..6), a
% Gaussian around its place in Russell's circumplex (sd 0.7): the simulator's own table (emolog.simulate.va;
% tests/model/test_va.py keeps them equal). The spec va_arousal.toml bins the index's arousal into one bin per
% integer, a0 .. a6; the scene net reads the scene's emotion (basic-7), pretrained on the index's labels.

nn(scene_net, [X], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: scene_emotion(X, E).
nn(face_net, [X, F], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: face_emotion(X, F, E).
nn(available, [X, F]) :: face_available(X, F).
face(face1). face(face2). face(face3).

t(_)::source(scene); t(_)::source(face1); t(_)::source(face2); t(_)::source(face3).

0.000059::expression_arousal(angry, a2); 0.009713::expression_arousal(angry, a3); 0.207407::expression_arousal(angry, a4); 0.575414::expression_arousal(angry, a5); 0.207407::expression_arousal(angry, a6).
0.000002::expression_arousal(disgust, a0); 0.000969::expression_arousal(disgust, a1); 0.057380::expression_arousal(disgust, a2); 0.441650::expression_arousal(disgust, a3); 0.441650::expression_arousal(disgust, a4); 0.057380::expression_arousal(disgust, a5); 0.000969::expression_arousal(disgust, a6).
0.000002::expression_arousal(fear, a1); 0.000970::expression_arousal(fear, a2); 0.057436::expression_arousal(fear, a3); 0.442078::expression_arousal(fear, a4); 0.442078::expression_arousal(fear, a5); 0.057436::expression_arousal(fear, a6).
0.000059::expression_arousal(happy, a1); 0.009619::expression_arousal(happy, a2); 0.205412::expression_arousal(happy, a3); 0.569879::expression_arousal(happy, a4); 0.205412::expression_arousal(happy, a5); 0.009619::expression_arousal(happy, a6).
0.057436::expression_arousal(sad, a0); 0.442078::expression_arousal(sad, a1); 0.442078::expression_arousal(sad, a2); 0.057436::expression_arousal(sad, a3); 0.000970::expression_arousal(sad, a4); 0.000002::expression_arousal(sad, a5).
0.000059::expression_arousal(surprise, a2); 0.009713::expression_arousal(surprise, a3); 0.207407::expression_arousal(surprise, a4); 0.575414::expression_arousal(surprise, a5); 0.207407::expression_arousal(surprise, a6).
0.009619::expression_arousal(neutral, a0); 0.205412::expression_arousal(neutral, a1); 0.569879::expression_arousal(neutral, a2); 0.205412::expression_arousal(neutral, a3); 0.009619::expression_arousal(neutral, a4); 0.000059::expression_arousal(neutral, a5).

arousal(X, V) :- source(scene), scene_emotion(X, E), expression_arousal(E, V).
arousal(X, V) :- source(F), face(F), face_emotion(X, F, E), expression_arousal(E, V).

available(X, scene).
available(X, F) :- face(F), face_available(X, F).
ok(X) :- source(S), available(X, S).

query(arousal(X, a0)). query(arousal(X, a1)). query(arousal(X, a2)). query(arousal(X, a3)). query(arousal(X, a4)). query(arousal(X, a5)). query(arousal(X, a6)).
evidence(ok(X)).
