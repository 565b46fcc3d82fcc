% Valence computed in the program from the networks' outputs (docs/model.md, "Valence and
% arousal"): the scene's and the largest face's valence, each the typical valence of its emotion on
% FindingEmo's scale (rounded from the circumplex places of emolog.simulate.va), averaged with the face
% counted twice, V is (S + 2 * F) / 3; an image without a face takes the scene's. Comparisons put the
% number into the target's bins, one per integer (va_computed.toml). No t(): the networks learn
% through the arithmetic (nets-only, joint).

nn(scene_net, [X], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: scene_emotion(X, E).
nn(face_net, [X, F], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: face_emotion(X, F, E).
nn(available, [X, F]) :: face_available(X, F).

emotion_valence(angry, -2).
emotion_valence(disgust, -2).
emotion_valence(fear, -2).
emotion_valence(happy, 2).
emotion_valence(sad, -2).
emotion_valence(surprise, 1).
emotion_valence(neutral, 0).

computed(X, V) :- face_available(X, face1), scene_emotion(X, E), face_emotion(X, face1, F),
                  emotion_valence(E, S), emotion_valence(F, G), V is (S + 2 * G) / 3.
computed(X, V) :- \+ face_available(X, face1), scene_emotion(X, E), emotion_valence(E, V).

bin(V, vm3) :- V < -2.5.
bin(V, vm2) :- V >= -2.5, V < -1.5.
bin(V, vm1) :- V >= -1.5, V < -0.5.
bin(V, v0) :- V >= -0.5, V < 0.5.
bin(V, vp1) :- V >= 0.5, V < 1.5.
bin(V, vp2) :- V >= 1.5, V < 2.5.
bin(V, vp3) :- V >= 2.5.

valence(X, B) :- computed(X, V), bin(V, B).

query(valence(X, vm3)). query(valence(X, vm2)). query(valence(X, vm1)). query(valence(X, v0)). query(valence(X, vp1)). query(valence(X, vp2)). query(valence(X, vp3)).
