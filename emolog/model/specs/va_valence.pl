% Valence from the seed's sources (docs/model.md, "Valence and arousal"): one source is chosen by
% a trainable disjunction, as in seed.pl, and its emotion (the scene net's or a face's expression) conveys
% a valence through a fixed prior table: each emotion's valence on FindingEmo's integer scale (-3..3), a
% Gaussian around its place in Russell's circumplex (sd 0.7): the simulator's own table (emolog.simulate.va;
% tests/model/test_va.py keeps them equal). The spec va_valence.toml bins the index's valence into one bin per
% integer, vm3 .. vp3; the scene net reads the scene's emotion (basic-7), pretrained on the index's labels.

nn(scene_net, [X], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: scene_emotion(X, E).
nn(face_net, [X, F], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: face_emotion(X, F, E).
nn(available, [X, F]) :: face_available(X, F).
face(face1). face(face2). face(face3).

t(_)::source(scene); t(_)::source(face1); t(_)::source(face2); t(_)::source(face3).

0.207407::expression_valence(angry, vm3); 0.575414::expression_valence(angry, vm2); 0.207407::expression_valence(angry, vm1); 0.009713::expression_valence(angry, v0); 0.000059::expression_valence(angry, vp1).
0.207407::expression_valence(disgust, vm3); 0.575414::expression_valence(disgust, vm2); 0.207407::expression_valence(disgust, vm1); 0.009713::expression_valence(disgust, v0); 0.000059::expression_valence(disgust, vp1).
0.207407::expression_valence(fear, vm3); 0.575414::expression_valence(fear, vm2); 0.207407::expression_valence(fear, vm1); 0.009713::expression_valence(fear, v0); 0.000059::expression_valence(fear, vp1).
0.000059::expression_valence(happy, vm1); 0.009713::expression_valence(happy, v0); 0.207407::expression_valence(happy, vp1); 0.575414::expression_valence(happy, vp2); 0.207407::expression_valence(happy, vp3).
0.207407::expression_valence(sad, vm3); 0.575414::expression_valence(sad, vm2); 0.207407::expression_valence(sad, vm1); 0.009713::expression_valence(sad, v0); 0.000059::expression_valence(sad, vp1).
0.000002::expression_valence(surprise, vm3); 0.000969::expression_valence(surprise, vm2); 0.057380::expression_valence(surprise, vm1); 0.441650::expression_valence(surprise, v0); 0.441650::expression_valence(surprise, vp1); 0.057380::expression_valence(surprise, vp2); 0.000969::expression_valence(surprise, vp3).
0.000059::expression_valence(neutral, vm3); 0.009619::expression_valence(neutral, vm2); 0.205400::expression_valence(neutral, vm1); 0.569844::expression_valence(neutral, v0); 0.205400::expression_valence(neutral, vp1); 0.009619::expression_valence(neutral, vp2); 0.000059::expression_valence(neutral, vp3).

valence(X, V) :- source(scene), scene_emotion(X, E), expression_valence(E, V).
valence(X, V) :- source(F), face(F), face_emotion(X, F, E), expression_valence(E, V).

available(X, scene).
available(X, F) :- face(F), face_available(X, F).
ok(X) :- source(S), available(X, S).

query(valence(X, vm3)). query(valence(X, vm2)). query(valence(X, vm1)). query(valence(X, v0)). query(valence(X, vp1)). query(valence(X, vp2)). query(valence(X, vp3)).
evidence(ok(X)).
