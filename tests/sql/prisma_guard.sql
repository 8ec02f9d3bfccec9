-- A database as Prisma Migrate leaves it, reduced to what the guard looks at
-- (written from the app's 20250903053802_init migration; tests/test_prisma_guard.py).

-- name: make_prisma_database :exec
-- _prisma_migrations as Prisma creates it, with the app's first migration
-- recorded, and the app's "Role" and "User" tables holding one user.
CREATE TABLE "_prisma_migrations" (
    "id"                  varchar(36) PRIMARY KEY NOT NULL,
    "checksum"            varchar(64) NOT NULL,
    "finished_at"         timestamptz,
    "migration_name"      varchar(255) NOT NULL,
    "logs"                text,
    "rolled_back_at"      timestamptz,
    "started_at"          timestamptz NOT NULL DEFAULT now(),
    "applied_steps_count" integer NOT NULL DEFAULT 0
);
INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count)
VALUES ('6f1c8a52-1d55-4a39-9d1e-3c2f3b0d8e11', repeat('a', 64), now(), '20250903053802_init', 1);
CREATE TABLE "Role" (
    "id"        text NOT NULL,
    "name"      text NOT NULL,
    "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" timestamp(3) NOT NULL,
    CONSTRAINT "Role_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "User" (
    "id"        text NOT NULL,
    "name"      text,
    "email"     text,
    "roleId"    text REFERENCES "Role" ("id"),
    "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" timestamp(3) NOT NULL,
    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);
INSERT INTO "Role" (id, name, "updatedAt") VALUES ('clrole0000admin', 'admin', now());
INSERT INTO "User" (id, email, "roleId", "updatedAt")
VALUES ('clh3am9x0000008l4fz7a1b2c', 'Ada@Example.com', 'clrole0000admin', now());

-- name: archive_prisma_tables :exec
-- Where `trampolin adopt prisma` leaves Prisma's tables: in prisma_archive.
CREATE SCHEMA prisma_archive;
ALTER TABLE "_prisma_migrations" SET SCHEMA prisma_archive;
ALTER TABLE "User" SET SCHEMA prisma_archive;
ALTER TABLE "Role" SET SCHEMA prisma_archive;

-- name: table_names :many
SELECT table_schema || '.' || table_name AS name
FROM information_schema.tables
WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1;
