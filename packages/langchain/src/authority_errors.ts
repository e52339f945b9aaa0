// What a failed Authority call becomes is the kernel's rule (AUTHORITY_UNREACHABLE, no raw text).
export { atAuthority, authorityFailure } from '@mandate/core/kernel'
