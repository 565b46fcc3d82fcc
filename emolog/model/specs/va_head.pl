% A head over cached features for both valence and arousal (docs/model.md, "Valence and arousal"):
% one trainable MLP (the spec va_head.toml binds va_net to a head over the scene features and the
% faces' expression distributions) gives a distribution over the 7 x 7 (valence, arousal) bins,
% named <valence bin>_<arousal bin>; the prediction is its expected value per variable, trained
% with the squared error of those expected values (a bounded regression head). The queries come
% from the spec, one per pair.

nn(va_net, [X], VA, [vm3_a0, vm3_a1, vm3_a2, vm3_a3, vm3_a4, vm3_a5, vm3_a6, vm2_a0, vm2_a1, vm2_a2, vm2_a3, vm2_a4, vm2_a5, vm2_a6, vm1_a0, vm1_a1, vm1_a2, vm1_a3, vm1_a4, vm1_a5, vm1_a6, v0_a0, v0_a1, v0_a2, v0_a3, v0_a4, v0_a5, v0_a6, vp1_a0, vp1_a1, vp1_a2, vp1_a3, vp1_a4, vp1_a5, vp1_a6, vp2_a0, vp2_a1, vp2_a2, vp2_a3, vp2_a4, vp2_a5, vp2_a6, vp3_a0, vp3_a1, vp3_a2, vp3_a3, vp3_a4, vp3_a5, vp3_a6]) :: va_bin(X, VA).

va(X, VA) :- va_bin(X, VA).
