% emolog gated program: a gate network chooses the source per image (context trust).
% Inputs per image: gate_net [B,4] over scene, face1, face2, face3; scene_net [B,7];
% face_net(face1..3) [B,7]; available(face1..3) [B] (1 or 0).

nn(gate_net, [X], S, [scene, face1, face2, face3]) :: source(X, S).
nn(scene_net, [X], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: scene_emotion(X, E).
nn(face_net, [X, F], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: face_emotion(X, F, E).
nn(available, [X, F]) :: face_available(X, F).

face(face1). face(face2). face(face3).

emotion(X, E) :- source(X, scene), scene_emotion(X, E).
emotion(X, E) :- source(X, F), face(F), face_emotion(X, F, E).

available(X, scene).
available(X, F) :- face(F), face_available(X, F).
ok(X) :- source(X, S), available(X, S).

query(emotion(X, angry)). query(emotion(X, disgust)). query(emotion(X, fear)).
query(emotion(X, happy)). query(emotion(X, sad)). query(emotion(X, surprise)).
query(emotion(X, neutral)).
evidence(ok(X)).
