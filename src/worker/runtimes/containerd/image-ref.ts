/** Image references as containerd takes them. */

/** Docker-style short names (`busybox`, `library/nginx:1`) as containerd needs them: fully qualified. */
export function normalizeImageRef(image: string): string {
  let ref = image.trim();
  const slash = ref.indexOf('/');
  const first = slash < 0 ? '' : ref.slice(0, slash);
  if (slash < 0) ref = `docker.io/library/${ref}`;
  else if (!first.includes('.') && !first.includes(':') && first !== 'localhost')
    ref = `docker.io/${ref}`;
  const lastPart = ref.slice(ref.lastIndexOf('/') + 1);
  if (!lastPart.includes(':') && !ref.includes('@')) ref += ':latest';
  return ref;
}

/** The containerd reference an image name may take: letters, digits, and the separators of a reference. */
export const IMAGE_REF = /^[a-z0-9][a-z0-9._\-/:@]*$/i;
