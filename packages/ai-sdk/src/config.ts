// Configuration checks are the kernel's, so every adapter refuses the same mistakes the same way.
export { audienceProblem as audienceProblemOf, configError, displayAudience, isCleartextRemote } from '@mandate/core/kernel'
