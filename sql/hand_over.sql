-- Make scoring_owner own the scoring schema and every table, view and sequence in it, so no
-- login owns anything a run or a deploy needs. Run by migrate as the deploying login; safe to
-- run again.
DO $$
DECLARE
    r record;
BEGIN
    IF (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'scoring')
        <> 'scoring_owner' THEN
        ALTER SCHEMA scoring OWNER TO scoring_owner;
    END IF;
    FOR r IN
        SELECT c.relname, c.relkind
        FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = 'scoring' AND c.relkind IN ('r', 'v', 'S', 'p')
          AND pg_get_userbyid(c.relowner) <> 'scoring_owner'
          -- a sequence a column owns (serial, identity) changes owner with its table
          AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.classid = 'pg_class'::regclass
                          AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
    LOOP
        EXECUTE format(
            'ALTER %s scoring.%I OWNER TO scoring_owner',
            CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
            r.relname
        );
    END LOOP;
END
$$;
