% emolog context-rules program: which source to trust depends on readable, per-image evidence.
% X is the image; face slots are face1..face3, largest face first.
% Inputs per image: scene_net [B,7], face_net(face1..3) [B,7], and per-image facts in [0, 1]:
%   available(face1..3)  the slot holds a real face
%   large(face1..3)      the face's box covers >= 2% of the image (emolog.model.gate.LARGE_FACE_AREA)
%   confident(face1..3)  the recogniser's top probability is >= 0.5 (gate.CONFIDENT_PROB)
% (emolog.model.gate.rule_facts computes them from the cache.)

nn(scene_net, [X], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: scene_emotion(X, E).
nn(face_net, [X, F], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: face_emotion(X, F, E).
nn(available, [X, F]) :: face_available(X, F).
nn(large, [X, F]) :: large_face(X, F).
nn(confident, [X, F]) :: confident(X, F).

face(face1). face(face2). face(face3).

% How much a face of each kind is trusted: one learned probability per kind, shared by the
% three slots (each slot draws its own independent coin with that probability).
t(_)::trust_large_confident(F).
t(_)::trust_large_unsure(F).
t(_)::trust_small_confident(F).
t(_)::trust_small_unsure(F).

trusted(X, F) :- face(F), face_available(X, F), large_face(X, F), confident(X, F), trust_large_confident(F).
trusted(X, F) :- face(F), face_available(X, F), large_face(X, F), \+ confident(X, F), trust_large_unsure(F).
trusted(X, F) :- face(F), face_available(X, F), \+ large_face(X, F), confident(X, F), trust_small_confident(F).
trusted(X, F) :- face(F), face_available(X, F), \+ large_face(X, F), \+ confident(X, F), trust_small_unsure(F).

% Look at the faces largest first; the first trusted face is the source; the scene is the
% source when no face is trusted (so photos without faces, or with only faces that are not
% trusted, are read from the scene).
source(X, face1) :- trusted(X, face1).
source(X, face2) :- \+ trusted(X, face1), trusted(X, face2).
source(X, face3) :- \+ trusted(X, face1), \+ trusted(X, face2), trusted(X, face3).
source(X, scene) :- \+ trusted(X, face1), \+ trusted(X, face2), \+ trusted(X, face3).

emotion(X, E) :- source(X, scene), scene_emotion(X, E).
emotion(X, E) :- source(X, F), face(F), face_emotion(X, F, E).

query(emotion(X, angry)). query(emotion(X, disgust)). query(emotion(X, fear)).
query(emotion(X, happy)). query(emotion(X, sad)). query(emotion(X, surprise)).
query(emotion(X, neutral)).
% The per-image source probabilities, read out for predictions.csv (w_<source>).
query(source(X, scene)). query(source(X, face1)). query(source(X, face2)). query(source(X, face3)).
