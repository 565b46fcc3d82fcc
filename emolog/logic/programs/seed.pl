% emolog seed program: the emotion of a photo is what one chosen source predicts.
% X is the image; face slots are face1..face3, largest face first.
% Inputs per image: scene_net [B,7], face_net(face1..3) [B,7], available(face1..3) [B] (1 or 0).

nn(scene_net, [X], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: scene_emotion(X, E).
nn(face_net, [X, F], E, [angry, disgust, fear, happy, sad, surprise, neutral]) :: face_emotion(X, F, E).
nn(available, [X, F]) :: face_available(X, F).

face(face1). face(face2). face(face3).

% Which source to trust: learned.
t(_)::source(scene); t(_)::source(face1); t(_)::source(face2); t(_)::source(face3).

emotion(X, E) :- source(scene), scene_emotion(X, E).
emotion(X, E) :- source(F), face(F), face_emotion(X, F, E).

% The chosen source exists in this photo (the scene always does).
available(X, scene).
available(X, F) :- face(F), face_available(X, F).
ok(X) :- source(S), available(X, S).

query(emotion(X, angry)). query(emotion(X, disgust)). query(emotion(X, fear)).
query(emotion(X, happy)). query(emotion(X, sad)). query(emotion(X, surprise)).
query(emotion(X, neutral)).
evidence(ok(X)).
